// A tiny web server for the lab hosts (run inside a lab namespace by `npm start`): answers every request with
// the host's name and the client's address, so a technician can see where a connection came from.
import { createServer } from 'node:http';

const [name = 'host', port = '80'] = process.argv.slice(2);
createServer((req, res) => {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from the ${name} web server; you are ${peer}\n`);
}).listen(Number(port), '::', () => process.stdout.write(`ready ${name}:${port}\n`));
