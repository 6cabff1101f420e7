"""The approval service's HTTP command API."""
