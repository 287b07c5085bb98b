from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Invite, Profile, User


class ProfileInline(admin.StackedInline):
    model = Profile
    fk_name = "user"
    can_delete = False
    raw_id_fields = ["referred_by"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
    list_display = ["username", "email", "email_verified", "is_staff", "last_login"]
    list_filter = [*BaseUserAdmin.list_filter, "email_verified", "marketing_opt_in"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        (
            "Activity",
            {
                "fields": [
                    "email_verified",
                    "marketing_opt_in",
                    "login_count",
                    "failed_login_count",
                    "last_login_ip",
                ]
            },
        ),
    ]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["email", "invited_by", "created_at", "accepted_at"]
    search_fields = ["email"]
    raw_id_fields = ["invited_by"]
