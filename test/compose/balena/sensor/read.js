setInterval(() => console.log(JSON.stringify({ t: Date.now() })), Number(process.env.READ_INTERVAL_MS || 1000));
