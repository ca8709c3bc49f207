"""Shop API: a realtime e-commerce backend on Tornado."""
