#!/usr/bin/python3
# A device that speaks MQTT 5 (paho-mqtt 1.6): publishes each value given at
# QoS 1 with user properties, and waits for each PUBACK. Exits 2 if the
# broker refuses the connection, 3 if a message is not acknowledged.
# Usage: mqtt5_publish.py HOST PORT TOPIC VALUE...
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

host, port, topic, values = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
connected = threading.Event()
result = {}


def on_connect(client, userdata, flags, reason, properties):
    result['reason'] = reason
    connected.set()


c = mqtt.Client(client_id='mqtt5-device', protocol=mqtt.MQTTv5)
c.on_connect = on_connect
c.connect(host, port)
c.loop_start()
# a reason code object from an MQTT 5 CONNACK; a bare number from an older broker's
if not connected.wait(10) or getattr(result['reason'], 'value', result['reason']) != 0:
    print('connection refused:', result.get('reason'), file=sys.stderr)
    sys.exit(2)
for v in values:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [('device', 'mqtt5-device'), ('unit', 'C')]
    info = c.publish(topic, v, qos=1, properties=props)
    info.wait_for_publish(10)
    if not info.is_published():
        print('no PUBACK for', v, file=sys.stderr)
        sys.exit(3)
c.disconnect()
c.loop_stop()
print('published', len(values))
