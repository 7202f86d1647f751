/** The long-running service commands: device, fog, csp, manufacturer (filled in below). */
export async function runDevice(_argv: string[]): Promise<void> {
    throw new Error('not yet');
}
export async function runFog(_argv: string[]): Promise<void> {
    throw new Error('not yet');
}
export async function runCsp(_argv: string[]): Promise<void> {
    throw new Error('not yet');
}
export async function runManufacturer(_argv: string[]): Promise<void> {
    throw new Error('not yet');
}
