"""Shared test configuration: deterministic hypothesis profiles."""
import os

from hypothesis import HealthCheck, settings

# CI and local runs are repeatable: derandomized, no deadline, bounded examples.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
