"""A real OpenID Connect provider for the SSO tests: a small Django project on
django-oauth-toolkit, started as its own process by `tests/people/conftest.py`.

Nothing here runs inside the test process except `provider.py`, which starts and seeds it.
"""
