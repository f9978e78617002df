"""Who is on a note, on every instance, and the bookkeeping that keeps sessions current."""
