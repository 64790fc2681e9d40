package httpapi

// EncodeAnswer is encodeAnswer, for the tests.
var EncodeAnswer = encodeAnswer
