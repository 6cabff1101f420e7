"""The read models as a pure function of the events: per-event rows and the batch fold."""
