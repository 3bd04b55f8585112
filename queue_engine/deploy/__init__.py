"""Deployment: broker accounts and ACL (``brokerconf``), sites split over several engines
(``sharding``), and the local development broker of the demo, the tests and the benchmarks
(``devbroker``)."""
