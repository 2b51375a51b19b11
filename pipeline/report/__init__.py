"""Reports: the ``fwtriage.report/1`` JSON contract, its schema, and the HTML/PDF renderings of it."""
