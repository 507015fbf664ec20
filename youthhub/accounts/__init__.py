"""Staff, partner and supervisor login: password + TOTP two-factor (django-otp), lockout
after failed attempts, session lifetime and idle timeout, and closing the WebSockets of a user
who logs out or is deactivated. See README ("Two-factor login") and docs/privacy.md."""
