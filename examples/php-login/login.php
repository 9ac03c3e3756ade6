<?php
// The second step of a login, as a host application runs it after the
// password was right: ask the host what to do (challenge), then enroll the
// user in TOTP or check their code. A web application would show pages;
// this example asks on the terminal, so it runs against a live host:
//
//   TWOFACTOR_URL=http://127.0.0.1:8740 TWOFACTOR_APP_KEY=... php login.php alice client
//
// It prints what it does, one line each, and exits 0 when the user is let
// in, 1 when not, 2 on an error.

declare(strict_types=1);

require __DIR__ . '/TwoFactorClient.php';

function say(string $line): void
{
    fwrite(STDOUT, $line . "\n");
}

function ask(string $prompt): string
{
    say($prompt);
    $line = fgets(STDIN);
    if ($line === false) {
        throw new RuntimeException('no answer on standard input');
    }
    return trim($line);
}

/** Lets the user in: a real application starts the session here. */
function letIn(string $why): int
{
    say("result: allow ($why)");
    return 0;
}

function refuse(string $why): int
{
    say("result: deny ($why)");
    return 1;
}

function login(TwoFactorClient $tf, string $user, string $audience): int
{
    $c = $tf->challenge($user, $audience);
    say("challenge: {$c['decision']} ({$c['why']})");
    switch ($c['decision']) {
        case 'allow':
            return letIn($c['why']);
        case 'deny':
            return refuse($c['why'] . (isset($c['retry_after']) ? ", retry after {$c['retry_after']} s" : ''));
        case 'enroll':
            return enroll($tf, $user, $audience, $c['providers']);
        case 'verify':
            return verify($tf, $user, $audience, $c['providers']);
    }
    throw new RuntimeException("unknown decision {$c['decision']}");
}

/** The user must set up a factor first: TOTP, confirmed with its first code. */
function enroll(TwoFactorClient $tf, string $user, string $audience, array $providers): int
{
    if (!in_array('totp', array_column($providers, 'name'), true)) {
        return refuse('this example enrolls in totp only');
    }
    $e = $tf->beginEnrollment($user, 'totp', $audience);
    // A web page shows the QR code: <img src="data:image/png;base64,...">.
    say('scan: ' . $e['display']['otpauth_url']);
    $code = ask('code: enter the code your authenticator app shows');
    try {
        $done = $tf->confirmEnrollment($user, 'totp', $code);
    } catch (TwoFactorError $err) {
        if ($err->status === 422) {
            return refuse($err->errorCode);
        }
        throw $err;
    }
    // Shown once, never again: the user writes them down.
    say('recovery codes: ' . count($done['recovery_codes'] ?? []));
    return letIn('enrolled');
}

/** The user has a factor: check a code from it. */
function verify(TwoFactorClient $tf, string $user, string $audience, array $providers): int
{
    if (!in_array('totp', array_column($providers, 'name'), true)) {
        return refuse('this example verifies totp codes only');
    }
    $code = ask('code: enter the code your authenticator app shows');
    try {
        $v = $tf->verify($user, 'totp', $audience, $code);
    } catch (TwoFactorError $err) {
        if ($err->errorCode === 'locked_out') {
            return refuse("locked_out, retry after {$err->retryAfter} s");
        }
        throw $err;
    }
    return $v['outcome'] === 'allow' ? letIn('verified') : refuse($v['reason'] ?? $v['outcome']);
}

$url = getenv('TWOFACTOR_URL') ?: 'http://127.0.0.1:8740';
$key = getenv('TWOFACTOR_APP_KEY');
if ($key === false || $key === '' || $argc !== 3) {
    fwrite(STDERR, "usage: TWOFACTOR_URL=... TWOFACTOR_APP_KEY=... php login.php USER AUDIENCE\n");
    exit(2);
}
try {
    exit(login(new TwoFactorClient($url, $key), $argv[1], $argv[2]));
} catch (Throwable $e) {
    // The API's messages never hold a secret, so they may be shown.
    fwrite(STDERR, 'error: ' . $e->getMessage() . "\n");
    exit(2);
}
