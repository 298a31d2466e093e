// A TCP proxy between the client processes and PostgreSQL that loses the answer to a COMMIT:
// it forwards the COMMIT, closes the client's side at once and lets the server finish. The
// transaction commits and the host never hears it did: the "unknown outcome" idempotency keys
// exist for. The host retries with the same key and must get the original back (replayed),
// never a second copy. Everything else passes through untouched.
import net from 'node:net';

// node-postgres sends a bare `commit` as a simple Query message: 'Q', int32 length (4 + 7), "commit\0"
const commitMessage = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 11]), Buffer.from('commit\0')]);

export interface CommitLossProxy {
  port: number;
  close(): Promise<void>;
}

export async function startCommitLossProxy(options: {
  target: { host: string; port: number };
  /** Share of COMMITs whose answer is lost. */
  rate: number;
  random: () => number;
  onLoss: () => void;
}): Promise<CommitLossProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(options.target.port, options.target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      // a side that fails takes the other with it, as a broken network would
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (chunk.includes(commitMessage) && options.random() < options.rate) {
        // the server gets the COMMIT (and then the end of the stream); the client gets nothing more
        upstream.end(chunk);
        client.destroy();
        options.onLoss();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
