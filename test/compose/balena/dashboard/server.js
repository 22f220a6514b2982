require("http").createServer((q, s) => s.end("dashboard")).listen(8080);
