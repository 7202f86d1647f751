/**
 * @m2m-fabric/common: what the device agent and the services share on the wire and on disk.
 *
 * - the MQTT link: {@link MqttConnection}, the request client, topic layout and envelopes;
 * - typed service errors ({@link ServiceError}, {@link ServiceErrorCode}) carried in replies;
 * - route IDs that bind a fog-to-CSP route to one session;
 * - the configuration schema and loader used by every command;
 * - owner-only (0600) atomic JSON files and the logger.
 */
export * from './connection.js';
export * from './errors.js';
export * from './envelope.js';
export * from './topics.js';
export * from './request-client.js';
export * from './route.js';
export * from './config.js';
export * from './secure-file.js';
export * from './log.js';
