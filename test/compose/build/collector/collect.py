import os, time
while True:
    time.sleep(int(os.environ.get("MODBUS_POLL_MS", "500")) / 1000)
