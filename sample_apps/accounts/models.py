from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The site's user. Custom from day one, as the Django docs recommend."""

    email_verified = models.BooleanField("email verified", default=False)
    marketing_opt_in = models.BooleanField("receives marketing e-mails", default=False)
    login_count = models.IntegerField("number of logins", default=0)
    # The database holds DEFAULT 0 for this column (see migration 0003).
    failed_login_count = models.IntegerField("failed login attempts", default=0)
    last_login_ip = models.GenericIPAddressField(
        "IP address of the last login", null=True, blank=True
    )

    class Meta(AbstractUser.Meta):
        ordering = ["username"]

    def __str__(self):
        return self.get_full_name() or self.username


class Profile(models.Model):
    """Public profile shown next to a user's posts, comments and orders."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField("display name", max_length=100, blank=True)
    about = models.TextField(blank=True)
    # Renamed from ``phone`` in Django's state only: the column is still "phone".
    phone_number = models.CharField(max_length=32, blank=True, db_column="phone")
    website = models.URLField(blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    referred_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name="referred by",
    )
    # Added without a constraint (0012), constrained in 0013: the validating hazard.
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        related_name="invitees",
        verbose_name="invited by",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "accounts_user_profile"
        ordering = ["user__username"]
        verbose_name = "profile"
        verbose_name_plural = "profiles"

    def __str__(self):
        return self.display_name or str(self.user)


class Invite(models.Model):
    """An invitation sent by e-mail to join the site."""

    email = models.EmailField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sent_invitations",
    )
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation for {self.email}"

    @property
    def is_accepted(self):
        return self.accepted_at is not None
