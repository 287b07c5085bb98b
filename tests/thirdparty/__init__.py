"""A Django project of third-party apps whose whole migration history is audited.

See ``tests/test_thirdparty.py`` and ``docs/thirdparty-audit.md``.
"""
