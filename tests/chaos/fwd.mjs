// A plain TCP forwarder, started by driver.mjs inside the chaos namespace (`ip netns exec`):
// listens on the namespace's private veth address and forwards to the runner, which listens on
// 127.0.0.1 inside the same namespace. No faults here: impairments are nft/tc on the veth and
// the driver's proxy. Usage: node fwd.mjs <listen-host> <listen-port> <target-host> <target-port>
import net from 'node:net';

const [lhost, lport, thost, tport] = process.argv.slice(2);
const server = net.createServer((client) => {
  const up = net.connect({ host: thost, port: Number(tport) });
  client.setNoDelay(true);
  up.setNoDelay(true);
  client.pipe(up);
  up.pipe(client);
  const kill = () => {
    client.destroy();
    up.destroy();
  };
  client.on('error', kill);
  up.on('error', kill);
  client.on('close', kill);
  up.on('close', kill);
});
server.listen({ host: lhost, port: Number(lport), backlog: 2048 }, () => {
  console.log(`forwarding ${lhost}:${lport} -> ${thost}:${tport}`);
});
server.on('error', (e) => {
  console.error(`fwd: ${e.message}`);
  process.exit(1);
});
// Never outlive the driver: it holds our stdin open.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
