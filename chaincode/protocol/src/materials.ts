/**
 * The material-traceability records of paper 000 §5 as the chaincode's `materials` contract stores
 * and returns them (canonical JSON), shared by the chaincode and the SDK's MaterialsClient. Type
 * aliases, not interfaces, so they stay assignable to the chaincode's JSON value type.
 */

export const TransformationKind = {
    /** One input lot into several output lots. */
    Split: 'split',
    /** Several input lots into one output lot. */
    Merge: 'merge',
    /** A process step (carding, drawing, combing ...): any number in, any number out. */
    Process: 'process',
} as const;
export type TransformationKind = (typeof TransformationKind)[keyof typeof TransformationKind];

export type LotRecord = {
    lotId: string;
    kind: string;
    quantity: number;
    unit: string;
    origin: string;
    owner: string;
    /** Longest chain of transformations from a raw lot (0 for a registered raw lot). */
    generation: number;
    /** Quantity consumed by transformations so far (never above quantity). */
    consumed: number;
    /** Transformations that consumed part of this lot. */
    consumers: number;
    /** The transformation that created this lot; absent for a registered raw lot. */
    producedBy?: string;
    createdAt: string;
};

export type TransformationInput = {
    lotId: string;
    quantity: number;
};

export type TransformationOutput = {
    lotId: string;
    kind: string;
    quantity: number;
    unit: string;
};

/** What the recorder submits (the JSON argument of recordTransformation). */
export type TransformationSpec = {
    transformationId: string;
    kind: TransformationKind;
    equipmentId: string;
    step: string;
    inputs: TransformationInput[];
    outputs: TransformationOutput[];
    parameters: { [name: string]: string };
    qualityRefs: string[];
};

export type TransformationRecord = TransformationSpec & {
    owner: string;
    /** 'equipment' when the machine's own signature authorised it, 'owner' when its owner organisation did. */
    recordedBy: 'equipment' | 'owner';
    submitter: string;
    recordedAt: string;
};
