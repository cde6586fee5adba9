"""The plugin kit: conformance checks a plugin author runs from one pytest test.

Connectors::

    from monitor.testing import check_bad_options, check_connector

    def test_my_connector_honours_the_contract(tmp_path):
        source = MySource(tmp_path)                      # starts empty
        check_connector(lambda: MyConnector({"path": str(tmp_path)}), source.append,
                        total_rows=250, id_column="id")

    def test_my_queue_connector_honours_the_contract():   # a source that cannot be re-read
        queue = MyQueue()                                  # starts empty
        check_connector(lambda: MyQueueConnector({"queue": queue.name}), queue.publish,
                        total_rows=250, mode="ack")

    def test_my_connector_rejects_bad_options():
        check_bad_options(MyConnector, [("path", {}), ("path", {"path": 3})])

Adapters::

    from monitor.testing import check_adapter, check_adapter_bad_options

    def test_my_adapter_honours_the_contract():
        check_adapter(lambda: MyAdapter({"strength": 0.5}))

    def test_my_adapter_rejects_bad_options():
        check_adapter_bad_options(MyAdapter, [("strength", {"strength": -1})])

Notifiers::

    from monitor.testing import check_notifier_bad_options, sample_event

    def test_my_notifier_sends_an_event():
        MyNotifier({"url": server.url}).notify(sample_event("drift_detected"))

    def test_my_notifier_rejects_bad_options():
        check_notifier_bad_options(MyNotifier, [("url", {}), ("url", {"url": 3})])

Measures::

    from monitor.testing import check_measure

    def test_my_measure_honours_the_contract():
        check_measure(MyMeasure())     # attributes, types, determinism, no NaN, p-values, null false positives

Each check raises AssertionError saying which promise was broken and how.
"""

from monitor.testing.adapters import (
    CentroidClassifier,
    adaptation_context,
    check_adapter,
    check_adapter_bad_options,
)
from monitor.testing.connectors import check_bad_options, check_connector, drain
from monitor.testing.measures import MeasureCheck, check_measure
from monitor.testing.notifiers import check_notifier_bad_options, sample_event

__all__ = [
    "CentroidClassifier", "MeasureCheck", "adaptation_context", "check_adapter", "check_adapter_bad_options",
    "check_bad_options", "check_connector", "check_measure", "check_notifier_bad_options", "drain", "sample_event",
]
