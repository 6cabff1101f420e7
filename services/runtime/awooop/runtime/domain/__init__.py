"""The run aggregate and its decisions: pure, no I/O."""
