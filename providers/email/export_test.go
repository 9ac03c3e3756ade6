package email

// MaxConfirmWrong is maxConfirmWrong, for the external tests.
const MaxConfirmWrong = maxConfirmWrong
