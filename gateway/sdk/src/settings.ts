/**
 * The environment settings the SDK reads itself — the ledger connection (FABRIC_*) and the object
 * store (IPFS_*, M2M_STORE_DIR) — as data, so every command's `--help` lists them beside its own
 * schema with their variable, meaning and default (in the protocol's {@link EnvSetting} shape, as
 * every setting is). The readers are
 * ledger/fabric/config.ts (loadFabricConfig) and storage/config.ts (storageConfigFromEnv).
 */
import type { EnvSetting } from '@m2m-fabric/protocol';
import { CONNECTION_FILE_ENV, DEFAULT_TIMEOUTS, ENV_NAMES } from './ledger/fabric/config.js';

/** How a service reaches the ledger (a connection file, or each variable on its own). */
export const FABRIC_SETTINGS: readonly EnvSetting[] = [
    { env: CONNECTION_FILE_ENV, description: 'a connection file (.env or .json) or a directory of them' },
    { env: ENV_NAMES.peerEndpoint, description: "the org's peer Gateway endpoint, host:port (required)" },
    { env: ENV_NAMES.hostAlias, description: "TLS host name of the peer (when it differs from the endpoint's)" },
    { env: ENV_NAMES.tlsCaCertPath, description: "PEM file of the peer's TLS CA (required)" },
    { env: ENV_NAMES.mspId, description: 'MSP ID of this identity (required)' },
    { env: ENV_NAMES.certPath, description: "PEM file of this identity's certificate (required)" },
    { env: ENV_NAMES.keyPath, description: "PEM file of this identity's private key (0600) (required)" },
    { env: ENV_NAMES.channelName, description: 'channel (required)' },
    { env: ENV_NAMES.chaincodeName, description: 'chaincode name (required)' },
    { env: ENV_NAMES.contractName, description: 'default contract (unset: per call)' },
    { env: ENV_NAMES.evaluateTimeoutMs, description: 'evaluate deadline, ms', default: DEFAULT_TIMEOUTS.evaluateMs },
    { env: ENV_NAMES.endorseTimeoutMs, description: 'endorse deadline, ms', default: DEFAULT_TIMEOUTS.endorseMs },
    { env: ENV_NAMES.submitTimeoutMs, description: 'submit deadline, ms', default: DEFAULT_TIMEOUTS.submitMs },
    {
        env: ENV_NAMES.commitStatusTimeoutMs,
        description: 'commit-status deadline, ms',
        default: DEFAULT_TIMEOUTS.commitStatusMs,
    },
    { env: ENV_NAMES.endorsementPolicy, description: "the channel's endorsement policy, for error messages" },
];

/** Which object store a service uses: the embedded one (default) or a Kubo daemon. */
export const STORAGE_SETTINGS: readonly EnvSetting[] = [
    {
        env: 'IPFS_API_URL',
        description: 'RPC API of a Kubo daemon, e.g. http://127.0.0.1:5001 (unset: embedded store)',
    },
    { env: 'IPFS_TIMEOUT_MS', description: 'per-request time limit, ms', default: 10000 },
    { env: 'IPFS_RETRIES', description: 'extra attempts after a connection failure', default: 3 },
    { env: 'IPFS_OFFLINE', description: '1/true: never search the network for a missing object' },
    {
        env: 'IPFS_MAX_OBJECT_BYTES',
        description: 'largest reply a get reads from the daemon; longer replies are aborted (at most 1048576)',
        default: 1048576,
    },
    { env: 'M2M_STORE_DIR', description: 'directory of the embedded store (default <data dir>/objects)' },
];
