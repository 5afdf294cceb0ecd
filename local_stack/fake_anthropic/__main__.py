from local_stack.fake_anthropic import AnthropicConfig, FakeAnthropic
from local_stack.http_fake import serve_main

serve_main(FakeAnthropic, AnthropicConfig)
