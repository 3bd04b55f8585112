"""The county service (``hallwatch county``): one live view of every hall of a county, from
what the halls' engines publish on the county broker, however the county is deployed.
``model`` is the pure view, ``store`` its SQLite file, ``service`` the MQTT shell, ``web``
the console and its API."""
