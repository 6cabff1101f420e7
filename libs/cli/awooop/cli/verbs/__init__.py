"""The arguments and help of the verbs whose work needs far more than their arguments:
HTTP clients, tokens, settings, a Kafka producer.

Each module here registers the verbs that the module of the same name in `awooop.cli`
carries out, naming each handler with a `DeferredHandler`: `awooop runs list --help`,
or a usage error, imports this package and nothing of the work.
"""
