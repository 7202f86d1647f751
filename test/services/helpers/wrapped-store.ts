/**
 * An object store that passes every call to another one; tests override the calls they inject
 * faults into (a daemon that is down, bytes that change, a fetch held back).
 */
import type { ObjectStore } from '@m2m-fabric/sdk';

export class WrappedStore implements ObjectStore {
    constructor(protected readonly inner: ObjectStore) {}
    get backend(): ObjectStore['backend'] {
        return this.inner.backend;
    }
    put: ObjectStore['put'] = (b, o) => this.inner.put(b, o);
    putMany: ObjectStore['putMany'] = (b, o) => this.inner.putMany(b, o);
    get: ObjectStore['get'] = (c, o) => this.inner.get(c, o);
    has: ObjectStore['has'] = (c, o) => this.inner.has(c, o);
    pin: ObjectStore['pin'] = (c, o) => this.inner.pin(c, o);
    unpin: ObjectStore['unpin'] = (c, o) => this.inner.unpin(c, o);
    isPinned: ObjectStore['isPinned'] = (c, o) => this.inner.isPinned(c, o);
    health: ObjectStore['health'] = (o) => this.inner.health(o);
    /** The wrapped store belongs to the test bed, which closes it. */
    close: ObjectStore['close'] = async () => undefined;
}
