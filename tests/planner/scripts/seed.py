"""Fill the sample project's tables with rows (run in the project folder, fully migrated)."""

import datetime
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_project.settings")
sys.path.insert(0, os.getcwd())
django.setup()

from accounts.models import Invite, Profile, User  # noqa: E402
from blog.models import Comment, Post, Series, Tag  # noqa: E402
from django.db import connection  # noqa: E402
from shop.models import Customer, Order, OrderItem, Product  # noqa: E402

users = [
    User.objects.create(username=f"user{i}", email=f"user{i}@example.com", login_count=i)
    for i in range(1, 6)
]
for user in users[:3]:
    Profile.objects.create(user=user, display_name=user.username, phone_number="555")
Invite.objects.create(email="a@example.com", invited_by=users[0], token="t1")
Invite.objects.create(email="b@example.com", invited_by=users[1], token="t2")
customers = [
    Customer.objects.create(email=f"c{i}@example.com", full_name=f"Customer {i}", user=users[i])
    for i in range(3)
]
products = [
    Product.objects.create(sku=f"SKU-{i}", name=f"Product {i}", price=10 + i, stock=i)
    for i in range(4)
]
for i in range(6):
    order = Order.objects.create(customer=customers[i % 3], total=i, payment_reference=1000 + i)
    OrderItem.objects.create(order=order, product=products[i % 4], quantity=1 + i, unit_price=5)
tags = [Tag.objects.create(name=f"tag{i}", slug=f"tag-{i}") for i in range(3)]
posts = []
for i in range(7):
    post = Post(
        author=users[i % 5],
        title=f"Post {i}",
        slug=f"post-{i}",
        summary="summary" if i % 2 else "",
        body="word " * (50 * i + 1),
        published_at=datetime.datetime(2024, 1, 1 + i, tzinfo=datetime.timezone.utc),
        comment_count=None if i % 3 else i,
    )
    post.save()
    post.tags.set(tags[: i % 3])
    posts.append(post)
for i, post in enumerate(posts):
    Comment.objects.create(post=post, author=users[i % 5], author_name=f"reader{i}", body="nice")
series = Series.objects.create(owner=users[0], title="Series", slug="series")
series.posts.set(posts[:3])
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
print("seeded")
