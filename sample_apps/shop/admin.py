from django.contrib import admin

from .models import Customer, Order, OrderItem, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "company_name", "created_at"]
    search_fields = ["full_name", "email", "company_name"]
    raw_id_fields = ["user", "account_manager"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "price", "stock", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "sku"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "status", "total", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["customer"]
    inlines = [OrderItemInline]
