// Package mailer sends margen's emails through an SMTP server (with
// github.com/wneessen/go-mail): today the survey link a member sends to a
// customer (job kind margen.JobSurveyEmail). It is the one package that
// speaks SMTP; it never logs an address, a token or a password.
package mailer
