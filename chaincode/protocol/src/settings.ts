/**
 * The shape of one configuration setting, shared by every package that has settings: the typed
 * command schemas (`ConfigSchema` in @m2m-fabric/common, read by `loadConfig`), the variables the
 * SDK reads itself (FABRIC_*, IPFS_*, M2M_STORE_DIR) and the chaincode's access policy
 * (M2M_*_MSPS), which the peer's chaincode process reads from its own environment. It lives here
 * because the chaincode may depend on nothing but this package; `--help` prints every kind with
 * the same {@link describeSettings}.
 */

/** One setting: the environment variable that sets it, what it sets, and its default. */
export interface EnvSetting {
    /** Environment variable that sets it. */
    readonly env: string;
    readonly description: string;
    readonly default?: string | number | boolean;
    /** Never echoed in error messages, dumps or `--help`. */
    readonly secret?: boolean;
}

/** The `--help` line of a setting: its config key (blank when it has none), variable, meaning, default. */
export function describeSetting(key: string, setting: EnvSetting): string {
    const shown = setting.default !== undefined && setting.secret !== true;
    const def = shown ? ` (default ${JSON.stringify(setting.default)})` : '';
    return `  ${key.padEnd(26)} ${setting.env.padEnd(32)} ${setting.description}${def}`;
}

/** A titled block of `--help` lines, one per setting that only an environment variable sets. */
export function describeSettings(title: string, settings: readonly EnvSetting[]): string {
    return [title, ...settings.map((s) => describeSetting('', s))].join('\n');
}
