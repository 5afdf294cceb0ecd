"""Long-running processes that turn outside events into flow runs."""
