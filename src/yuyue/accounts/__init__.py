"""Patient accounts on the web: sign-in with a one-time SMS code, and browser sessions."""
