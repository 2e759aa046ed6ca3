"""The streamed passes over one model's filter store, planned in bounded segments."""
