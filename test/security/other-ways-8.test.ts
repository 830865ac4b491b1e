// Red team, eighth round: a segment that reached a machine's wire but that its kernel never took in. A frame
// addressed to every machine (broadcast) or to a group (multicast) carrying a unicast TCP segment is neither
// forwarded by a router nor taken by TCP (both want a frame addressed to the machine itself), so it dies with no
// rule, just as a TTL of 1 (sixth round) or IP options (seventh) did. A root student sends such frames with a
// packet socket (NET_RAW). The recorder kept them as arriving, so "the SYN|ACKs reached the firewall and never
// left it" held for forged frames while the server's own OUTPUT rule kept the real SYN|ACKs home: Lab 11's
// task with no rule on the firewall. Now the recorder keeps as arriving only what the kernel could take in: a
// frame addressed to the machine, an IPv4 header whose checksum holds and whose length fits, no fragment.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { background, expectOnlyHonestPasses, gradeAnswers, synQueueAnswers } from '../helpers/answers.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-otherways8-'));

/** The server forges SYN|ACKs from its port 5556 to the client, on its `back` interface, every 0.2 s: frames
 *  addressed to `to` (broadcast, a multicast group, or the firewall itself), with an IPv4 header checksum that
 *  holds or not, fragmented or not. */
const forged = (to: 'broadcast' | 'multicast' | 'firewall', opts: { badIpSum?: boolean; fragment?: boolean } = {}) =>
  background(`import socket, struct, time
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def firewall():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("{{firewall.ip.back}}", 9))
    for _ in range(50):
        for f in (l.split() for l in open("/proc/net/arp").read().splitlines()[1:]):
            if f[0] == "{{firewall.ip.back}}" and f[3] != "00:00:00:00:00:00": return f[3]
        time.sleep(0.1)
dstmac = bytes.fromhex(({"broadcast": "ff:ff:ff:ff:ff:ff", "multicast": "01:00:5e:00:00:01"}.get("${to}") or firewall()).replace(":", ""))
src = socket.inet_aton("{{server.ip}}"); dst = socket.inet_aton("{{client.ip}}")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("back", 0))
me = bytes.fromhex(open("/sys/class/net/back/address").read().strip().replace(":", ""))
seq = 1000
for _ in range(600):
    tcp = struct.pack("!HHIIBBHHH", 5556, 40000, seq, 1, 5 << 4, 0x12, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xffff, ${opts.fragment ? '0x2000' : '0x4000'}, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)${opts.badIpSum ? ' ^ 0x5a5a' : ''}) + ip[12:]
    s.send(dstmac + me + b"\\x08\\x00" + ip + tcp)
    seq += 1; time.sleep(0.2)`);

describeDocker('red team, eighth round: segments on the wire that the kernel never took in', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("Lab 11: forged SYN|ACKs the firewall's kernel never took in (broadcast, multicast, a bad IP checksum, a fragment) are not its rule", async () => {
    const q = synQueueAnswers(8, 20);
    /** The server keeps its real SYN|ACKs home (OUTPUT) and puts forged ones on the firewall's wire. */
    const attack = (frames: string) => [
      { on: 'server', script: 'tcplab-sock listen 5556 --backlog 8', at: '0s' },
      { on: 'server', script: 'iptables -A OUTPUT -p tcp --sport 5556 --tcp-flags SYN,ACK SYN,ACK -j DROP', at: '0.5s', exit: 0 },
      { on: 'server', script: frames, at: '1s' },
      { on: 'client', script: 'tcplab-sock flood {{server.ip}} 5556 --count 20', at: '2s' },
    ];
    const by = await gradeAnswers(dir, '11', 'your-turn', {
      ...q.honest,
      broadcast: attack(forged('broadcast')),
      multicast: attack(forged('multicast')),
      'bad-ip-checksum': attack(forged('firewall', { badIpSum: true })),
      fragment: attack(forged('firewall', { fragment: true })),
    });
    expectOnlyHonestPasses(by, ['broadcast', 'multicast', 'bad-ip-checksum', 'fragment']);
  });
});
