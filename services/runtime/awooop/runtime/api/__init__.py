"""The runtime's HTTP command API: cancel a run, reset a tenant's kill switch."""
