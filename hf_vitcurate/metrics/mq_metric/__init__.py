"""The ``evaluate`` module computing MQ (``mq_metric.py``); load it with ``evaluate.load(mq_metric_path())``.

A package only so that the module ships in wheels; ``evaluate`` loads ``mq_metric.py`` by path.
"""
