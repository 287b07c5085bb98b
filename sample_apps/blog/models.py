from django.conf import settings
from django.db import models

WORDS_PER_MINUTE = 200


class Tag(models.Model):
    """A topic posts are filed under."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Post(models.Model):
    """An article of the blog."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    summary = models.TextField(blank=True)
    body = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    word_count = models.IntegerField(editable=False)
    reading_time_minutes = models.IntegerField("reading time (minutes)", null=True, blank=True)
    comment_count = models.IntegerField(null=True, blank=True, editable=False)
    view_count = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag, blank=True, related_name="posts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-created_at"]
        unique_together = [("author", "slug")]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        self.word_count = len(self.body.split())
        self.reading_time_minutes = max(1, -(-self.word_count // WORDS_PER_MINUTE))
        super().save(*args, **kwargs)


class Series(models.Model):
    """An ordered collection of posts by one author."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_series"
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    description = models.TextField(blank=True)
    posts = models.ManyToManyField(Post, blank=True, related_name="series")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        verbose_name = "series"
        verbose_name_plural = "series"
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="blog_series_owner_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "slug"], name="blog_series_unique_slug_per_owner"
            ),
        ]

    def __str__(self):
        return self.title


class Comment(models.Model):
    """A reader's comment on a post; shown once approved by a moderator."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="comments",
    )
    author_name = models.CharField(max_length=100)
    body = models.TextField(db_column="content")
    is_approved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["post", "created_at"], name="blog_comment_post_created_idx"),
        ]

    def __str__(self):
        return f"Comment by {self.author_name} on {self.post}"
