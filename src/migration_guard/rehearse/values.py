"""What the previous release writes: a value for each field it knows, from the field itself.

The workload's INSERTs and UPDATEs go through Django's ORM with the models of
the state before the change, so they name exactly the columns that release
knows. Their values come from each field as the running code would fill it:
its default when it has one (``default=...``, ``auto_now_add``), its first
choice when it has choices, otherwise a value of its type that satisfies what
a real application writes: text unique per query, small positive numbers
(so CHECK constraints such as ``quantity > 0`` and sums of amounts hold), the
current time, an existing row for a foreign key. Nullable fields get a value
too: the running code writes them, and a column made ``NOT NULL`` must see it.
A field with a database default (``db_default``) is left to the database, as
Django does.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import random
import uuid
from typing import Any

from django.db.models import NOT_PROVIDED
from django.utils import timezone

#: Non-unique numbers stay in 1..SMALL: a quantity, a count, an amount.
SMALL = 999

_counter = itertools.count(1)

_TEXT = frozenset(
    {
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "URLField",
        "FilePathField",
        "FileField",
        "ImageField",
        "CICharField",
        "CITextField",
        "CIEmailField",
    }
)
_INTEGERS = {
    "SmallIntegerField": (1, 32_767),
    "PositiveSmallIntegerField": (1, 32_767),
    "IntegerField": (1, 2_147_483_647),
    "PositiveIntegerField": (1, 2_147_483_647),
    "BigIntegerField": (1, 9_223_372_036_854_775_807),
    "PositiveBigIntegerField": (1, 9_223_372_036_854_775_807),
}


class NoValue(Exception):
    """No value can be made for a field (a type without a generator, NOT NULL)."""


def skipped(field: Any) -> bool:
    """Fields an INSERT of the previous release does not name or the database fills."""
    if getattr(field, "generated", False):
        return True
    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def is_unique(field: Any) -> bool:
    return bool(getattr(field, "unique", False)) or bool(getattr(field, "one_to_one", False))


class Values:
    """Values for one worker; ``tag`` keeps the text of different workers apart."""

    def __init__(self, rng: random.Random, tag: str) -> None:
        self.rng = rng
        self.tag = tag

    def token(self, length: int | None = None) -> str:
        text = f"{self.tag}{next(_counter):x}{self.rng.getrandbits(24):06x}"
        if length is not None and length < len(text):
            text = text[-length:] if length > 0 else ""
        return text

    def default(self, field: Any) -> Any:
        """The field's own default (a callable is called), or NOT_PROVIDED."""
        if field.has_default():
            return field.get_default()
        return NOT_PROVIDED

    def of_type(self, field: Any) -> Any:
        """A value of the field's type (relations are the caller's business)."""
        choices = getattr(field, "flatchoices", None)
        if choices:
            return choices[0][0]
        kind = field.get_internal_type()
        unique = is_unique(field)
        if kind in _TEXT:
            length = getattr(field, "max_length", None)
            if kind == "EmailField" and (length is None or length >= 40):
                return f"{self.token()}@example.com"
            return self.token(length)
        if kind in _INTEGERS:
            low, high = _INTEGERS[kind]
            if unique:
                return self.rng.randint(max(low, min(high, 1_000_000)), min(high, 2_000_000_000))
            return self.rng.randint(low, min(high, SMALL))
        if kind == "DecimalField":
            places = field.decimal_places or 0
            digits = (field.max_digits or 10) - places
            top = min(SMALL, 10**digits - 1) if digits > 0 else 0
            value = decimal.Decimal(self.rng.randint(1, top) if top >= 1 else 0)
            return value.quantize(decimal.Decimal(1).scaleb(-places))
        if kind == "FloatField":
            return round(self.rng.uniform(1, SMALL), 3)
        if kind in ("BooleanField", "NullBooleanField"):
            return True
        if kind == "DateTimeField":
            return timezone.now()
        if kind == "DateField":
            return datetime.date.today()
        if kind == "TimeField":
            return datetime.datetime.now().time().replace(microsecond=0)
        if kind == "DurationField":
            return datetime.timedelta(seconds=self.rng.randint(1, 3600))
        if kind == "UUIDField":
            return uuid.uuid4()
        if kind == "JSONField":
            return {"rehearsal": True}
        if kind == "BinaryField":
            return b"rehearsal"
        if kind in ("GenericIPAddressField", "IPAddressField"):
            return f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.1"
        if kind == "ArrayField":
            return []
        if kind == "HStoreField":
            return {}
        if field.null:
            return None
        raise NoValue(f"no value for {field.name} ({kind}) that the previous release writes")
