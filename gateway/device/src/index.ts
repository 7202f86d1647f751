/**
 * @m2m-fabric/device: the device agent run by the equipment itself. It needs only the protocol
 * module and the MQTT link, so an install on a Raspberry Pi pulls no Fabric, LevelDB or gRPC code.
 *
 * - {@link DeviceAgent}: one session end to end (M1 → M2 → M3, the CSP's Confirm, the session channel);
 * - the device state file (owner secret w, counter i, sessions) and its lock;
 * - the inbox through which the manufacturer delivers purchased certificates.
 */
export * from './agent.js';
export * from './state.js';
export * from './state-lock.js';
export * from './inbox.js';
export { runDevice, DEVICE_SCHEMA } from './cli.js';
export { runDeviceQuery } from './query-cli.js';
export * from './query-asker.js';
export * from './query-responder.js';
export * from './record-history.js';
export * from './receipt-check.js';
export * from './receipt-book.js';
