import uuid

from django.conf import settings
from django.db import models
from sample_project.compat import check_constraint


class Customer(models.Model):
    """Somebody who buys: a registered user or a guest checkout."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer",
        help_text="Empty for guest checkouts.",
    )
    email = models.EmailField()
    full_name = models.CharField(max_length=150)
    company_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_customers",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["full_name"]
        constraints = [
            models.UniqueConstraint(fields=["email"], name="shop_customer_email_uniq"),
        ]

    def __str__(self):
        return self.full_name


class Product(models.Model):
    """Something the shop sells."""

    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.IntegerField(default=0)
    reorder_level = models.PositiveIntegerField(
        null=True, blank=True, help_text="Restock when the stock falls below this level."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            check_constraint(models.Q(price__gte=0), name="shop_product_price_non_negative"),
        ]

    def __str__(self):
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    """A customer's order; its lines are OrderItem rows."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    # The database also gives this column DEFAULT gen_random_uuid() (migration 0021).
    public_id = models.UUIDField("public identifier", default=uuid.uuid4, editable=False, null=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    payment_reference = models.BigIntegerField(
        null=True, blank=True, help_text="Identifier of the payment at the payment provider."
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="shop_order_status_created_idx"),
            models.Index(fields=["customer", "-created_at"], name="shop_order_customer_recent_idx"),
        ]

    def __str__(self):
        return f"Order #{self.pk}"


class OrderItem(models.Model):
    """One line of an order: a product, a quantity and the price it was sold at."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.IntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            check_constraint(models.Q(quantity__gt=0), name="shop_orderitem_quantity_positive"),
            models.UniqueConstraint(
                fields=["order", "product"], name="shop_orderitem_one_line_per_product"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product}"

    @property
    def line_total(self):
        return self.quantity * self.unit_price
