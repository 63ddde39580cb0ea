"""python-socketio's KafkaManager with its publish fixed, for the Kafka peers
(cluster_server.py --kafka, cluster_emit.py --kafka).

python-socketio 5.18.1's KafkaManager hands kafka-python a `str` as the record
value, which kafka-python 2.x/3.x refuse ("Unsupported type for serialized
value"): `_publish` sends the JSON text as UTF-8 bytes instead (what the
receive side reads back). Its receive side is used as is.
"""

import socketio


class FixedKafkaManager(socketio.KafkaManager):
    def _publish(self, data):
        self.producer.send(self.channel, value=self.json.dumps(data).encode())
        self.producer.flush()


def kafka_urls(url):
    """`kafka://h1:p1,kafka://h2:p2` -> the list KafkaManager takes for
    several bootstrap brokers (one URL stays a string)."""
    urls = url.split(",")
    return urls if len(urls) > 1 else url
