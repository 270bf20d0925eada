# Every AWS event the agent understands, into the queue. The pattern is generated from
# aiops_agent.provision.bootstrap.event_pattern() (the same one `aiops-agent bootstrap` puts), by generate.py.

resource "aws_cloudwatch_event_rule" "events" {
  name           = "${var.name}-agent-events"
  description    = "AWS events the aiops-agent consumes, delivered to its SQS queue"
  event_bus_name = "default"
  event_pattern  = file("${path.module}/event_pattern.json")
}

resource "aws_cloudwatch_event_target" "queue" {
  rule      = aws_cloudwatch_event_rule.events.name
  target_id = "aiops-agent-queue" # = aiops_agent.provision.bootstrap.TARGET_ID
  arn       = aws_sqs_queue.events.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 20
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}
