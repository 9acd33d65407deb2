package bert

// PaddedPositionIDs exposes paddedPositionIDs to the tests.
var PaddedPositionIDs = paddedPositionIDs
