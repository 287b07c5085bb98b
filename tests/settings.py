"""Settings of the test suite: the sample project, plus what tests need.

Tests that audit a throwaway app replace INSTALLED_APPS for their duration
(see ``tests/harness.py``).
"""

from sample_project.settings import *  # noqa: F403

MIGRATION_GUARD = {}
