<?php
// A small client for the twofactor host's HTTP API (host/api/openapi.yaml),
// with nothing but PHP's standard library: the http:// stream wrapper and
// json. Copy it into a host application, or generate a full client from
// the OpenAPI document (see the README).

declare(strict_types=1);

/** An error answer of the API: {"error":{"code","message"}}. */
final class TwoFactorError extends RuntimeException
{
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        string $message,
        public readonly ?int $retryAfter = null,
    ) {
        parent::__construct("$status $errorCode: $message");
    }
}

final class TwoFactorClient
{
    public function __construct(
        private readonly string $baseUrl,
        private readonly string $apiKey,
        private readonly float $timeoutSeconds = 10.0,
    ) {
    }

    /** What the login form does next: allow, verify, enroll or deny. */
    public function challenge(string $user, string $audience, ?string $deviceToken = null, ?string $clientIp = null): array
    {
        $body = ['audience' => $audience];
        if ($deviceToken !== null) {
            $body['device_token'] = $deviceToken;
        }
        if ($clientIp !== null) {
            $body['client_ip'] = $clientIp;
        }
        return $this->call('POST', $this->userPath($user, 'challenge'), $body);
    }

    /** Begins an enrollment; the answer's display has the otpauth:// URL and a QR PNG. */
    public function beginEnrollment(string $user, string $provider, string $audience): array
    {
        return $this->call('POST', $this->userPath($user, 'enrollments'), ['provider' => $provider, 'audience' => $audience]);
    }

    /** Confirms an enrollment; the user's first factor also brings recovery_codes, to show once. */
    public function confirmEnrollment(string $user, string $provider, string $code): array
    {
        return $this->call('POST', $this->userPath($user, 'enrollments/' . rawurlencode($provider) . '/confirm'), ['code' => $code]);
    }

    /** Checks a code: outcome allow, or deny with a reason. */
    public function verify(string $user, string $provider, string $audience, string $code, ?string $clientIp = null): array
    {
        $body = ['provider' => $provider, 'audience' => $audience, 'code' => $code];
        if ($clientIp !== null) {
            $body['client_ip'] = $clientIp;
        }
        return $this->call('POST', $this->userPath($user, 'verify'), $body);
    }

    private function userPath(string $user, string $rest): string
    {
        return '/v1/users/' . rawurlencode($user) . '/' . $rest;
    }

    /** Sends one request; an error answer becomes a TwoFactorError. */
    private function call(string $method, string $path, ?array $body = null): array
    {
        $headers = ["Authorization: Bearer {$this->apiKey}", 'Accept: application/json'];
        $http = ['method' => $method, 'ignore_errors' => true, 'timeout' => $this->timeoutSeconds];
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
            $http['content'] = json_encode($body, JSON_THROW_ON_ERROR);
        }
        $http['header'] = implode("\r\n", $headers);
        $raw = @file_get_contents($this->baseUrl . $path, false, stream_context_create(['http' => $http]));
        // PHP fills $http_response_header with the status line and headers.
        $responseHeaders = $http_response_header ?? [];
        if ($raw === false || $responseHeaders === []) {
            throw new TwoFactorError(0, 'unreachable', "no answer from {$this->baseUrl}");
        }
        $status = (int) (explode(' ', $responseHeaders[0])[1] ?? 0);
        $retryAfter = null;
        foreach ($responseHeaders as $h) {
            if (stripos($h, 'Retry-After:') === 0) {
                $retryAfter = (int) trim(substr($h, strlen('Retry-After:')));
            }
        }
        $data = $raw === '' ? [] : json_decode($raw, true, 16, JSON_THROW_ON_ERROR);
        if ($status >= 400) {
            $err = $data['error'] ?? [];
            throw new TwoFactorError($status, (string) ($err['code'] ?? 'unknown'), (string) ($err['message'] ?? ''), $retryAfter);
        }
        return $data;
    }
}
