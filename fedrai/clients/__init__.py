"""The client side: guard the local data (filter, then CAI), then train locally."""
