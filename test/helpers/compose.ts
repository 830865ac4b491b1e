// Which Docker Compose this machine has: `docker compose` (v2, a docker CLI plugin) or `docker-compose` (v1,
// what Debian 12 packages). The tests and README's commands work with either; v2 is preferred when both exist.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface ComposeCli {
  /** argv before the Compose arguments: ['docker', 'compose'] or ['docker-compose']. */
  argv: string[];
  version: string;
  major: 1 | 2;
}

/** What is said when Compose is needed (LAB_REQUIRE_DOCKER=1) but missing: the exact command that installs it. */
export const COMPOSE_INSTALL =
  "apt-get install -y docker-compose (Debian 12 packages v1); or Docker's docker-compose-plugin for `docker compose` (v2)";

/** Ask one candidate for its version; undefined when it is not there (or not Compose). */
export type Probe = (argv: string[]) => Promise<string | undefined>;

const realProbe: Probe = async (argv) => {
  try {
    const { stdout } = await run(argv[0]!, [...argv.slice(1), 'version', '--short'], { timeout: 20_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
};

/** Pure apart from the probe: v2 first, then v1; a version string that is not Compose's is ignored. */
export async function findCompose(probe: Probe = realProbe): Promise<ComposeCli | undefined> {
  for (const argv of [['docker', 'compose'], ['docker-compose']]) {
    const out = await probe(argv);
    const m = out && /^v?(\d+)\.\d+/.exec(out);
    if (!m) continue;
    const major = Number(m[1]);
    // docker-compose 2.x exists too (v2 installed as a standalone binary); both speak the same command line.
    return { argv, version: out!.replace(/^v/, ''), major: major >= 2 ? 2 : 1 };
  }
  return undefined;
}

/** The error LAB_REQUIRE_DOCKER=1 gives when neither is there. */
export function missingComposeError(): Error {
  return new Error(`LAB_REQUIRE_DOCKER=1 but neither \`docker compose\` (v2) nor \`docker-compose\` (v1) is installed: ${COMPOSE_INSTALL}`);
}
