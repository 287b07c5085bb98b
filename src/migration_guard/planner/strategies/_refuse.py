"""Why a column cannot be copied automatically (shared by the expand/contract strategies)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import DjangoField, DjangoModel


def copy_obstacles(model: DjangoModel, field: DjangoField) -> list[str]:
    """What an expand/contract of ``field``'s column would have to rebuild by hand."""
    out = []
    if field.primary_key:
        out.append("it is the primary key")
    if field.is_relation:
        out.append("it is a foreign key")
    if field.unique or field.db_index:
        out.append("it has an index or a unique constraint")
    for index in model._meta.indexes:
        if field.name in (index.fields or []):
            out.append(f"index {index.name} uses it")
    for constraint in model._meta.constraints:
        if field.name in (getattr(constraint, "fields", None) or ()):
            out.append(f"constraint {constraint.name} uses it")
    for together in model._meta.unique_together:
        if field.name in together:
            out.append("unique_together uses it")
    for related in model._meta.related_objects:
        target = getattr(related.field, "target_field", None)
        if target is not None and target.column == field.column:
            out.append(f"{related.related_model.__name__}.{related.field.name} references it")
    return out
