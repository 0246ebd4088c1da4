import { once } from "node:events";
import net from "node:net";

/**
 * For the failswitch `db.no_reconnect` only: a postgres.js socket factory
 * for one pool that, once any of its connections was lost to an error (a
 * reset), never connects again — every later connection fails the way an
 * unreachable server's does, so the pool keeps retrying in vain, as a client
 * without reconnect logic would stay down. Tests arm it to prove that a
 * network scenario notices a role that cannot reconnect.
 */
export function socketsWithoutReconnect() {
  let lost = false;
  return async (o: { host: string[]; port: number[] }): Promise<net.Socket> => {
    const port = o.port[0] ?? 5432;
    const host = o.host[0] ?? "127.0.0.1";
    if (lost) {
      const dead = new net.Socket();
      // After postgres.js has attached its listeners: it handles the error as a failed connect.
      setImmediate(() => dead.destroy(new Error("reconnecting is switched off (db.no_reconnect)")));
      return dead;
    }
    const socket = net.connect(port, host);
    await once(socket, "connect");
    socket.on("close", (hadError: boolean) => {
      if (hadError) lost = true;
    });
    return socket;
  };
}
