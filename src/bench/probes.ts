// Programs the latency measurements run in a lab node.

/**
 * python3 -c LISTEN_LATER PORT: binds PORT, waits a random 150-450 ms (so a look cannot be timed to it), then
 * listens and prints the moment it did (epoch seconds), and stays up for a minute.
 */
export const LISTEN_LATER = [
  'import random, socket, sys, time',
  's = socket.socket()',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  "s.bind(('0.0.0.0', int(sys.argv[1])))",
  'time.sleep(random.uniform(0.15, 0.45))',
  's.listen(1)',
  "print('%.6f' % time.time(), flush=True)",
  'time.sleep(60)',
].join('\n');
